/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof example: tdcall_sum (see original.S) with its two pops swapped,
 * so the caller gets RBX and R12 back exchanged.
 */
#include <linux/linkage.h>
#include <asm/asm.h>

SYM_FUNC_START(tdcall_sum)
	push	%rbx
	push	%r12
	mov	%rdi, %rbx
	mov	%rsi, %r12
	mov	%rbx, %rax
	mov	%r12, %rcx
	xor	%edx, %edx
	tdcall
	add	%rcx, %rax
	add	%r12, %rax
	pop	%rbx
	pop	%r12
	RET
SYM_FUNC_END(tdcall_sum)
