/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof example: a guest wrapper that keeps its two arguments in
 * callee-saved registers across a TDCALL and returns status + first output.
 *
 *   u64 tdcall_sum(u64 leaf, u64 input);
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
	pop	%r12
	pop	%rbx
	RET
SYM_FUNC_END(tdcall_sum)
