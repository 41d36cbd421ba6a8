/* SPDX-License-Identifier: GPL-2.0 */
/* tdxproof example: a TDCALL of the leaf in RDI, status returned. */
#include <linux/linkage.h>
#include <asm/asm.h>

SYM_FUNC_START(tdcall_leaf)
	mov	%rdi, %rax
	tdcall
	RET
SYM_FUNC_END(tdcall_leaf)
