/* SPDX-License-Identifier: GPL-2.0 */
/* tdxproof example: the leaf of tdcall_leaf (../trivial_equal), issued twice. */
#include <linux/linkage.h>
#include <asm/asm.h>

SYM_FUNC_START(tdcall_leaf_twice)
	mov	%rdi, %rax
	tdcall
	mov	%rdi, %rax
	tdcall
	RET
SYM_FUNC_END(tdcall_leaf_twice)
