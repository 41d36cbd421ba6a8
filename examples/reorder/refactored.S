/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof example: tdcall_sum (see original.S) refactored: the saves are
 * pushed in the other order (and popped in the other order, consistently),
 * and independent moves are reordered.
 */
#include <linux/linkage.h>
#include <asm/asm.h>

SYM_FUNC_START(tdcall_sum)
	push	%r12
	push	%rbx
	mov	%rsi, %r12
	xor	%edx, %edx
	mov	%rdi, %rbx
	mov	%rsi, %rcx
	mov	%rdi, %rax
	tdcall
	add	%r12, %rax
	add	%rcx, %rax
	pop	%rbx
	pop	%r12
	RET
SYM_FUNC_END(tdcall_sum)
