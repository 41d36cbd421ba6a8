/* SPDX-License-Identifier: GPL-2.0 */
/* tdxproof example: two functions that return different constants. */
#include <linux/linkage.h>
#include <asm/asm.h>

SYM_FUNC_START(return_one)
	movl	$1, %eax
	RET
SYM_FUNC_END(return_one)

SYM_FUNC_START(return_two)
	movl	$2, %eax
	RET
SYM_FUNC_END(return_two)
