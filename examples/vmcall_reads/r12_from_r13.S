/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof example: the v6.3 __tdx_hypercall (tests/fixtures/v6.3) with one
 * bug in what the VMM sees -- R12 is loaded from args->r13 -- so the VMM may
 * answer otherwise and the caller may get another RAX.  Written for tdxproof.
 */
#include <asm/asm-offsets.h>
#include <asm/frame.h>
#include <linux/objtool.h>
#include <asm/tdx.h>
#include <linux/linkage.h>
#include <linux/bits.h>

#define TDVMCALL_EXPOSE_REGS_MASK	\
	( BIT(2) | BIT(3) | BIT(6) | BIT(7) | BIT(8) | BIT(9) | \
	  BIT(10) | BIT(11) | BIT(12) | BIT(13) | BIT(14) | BIT(15) )

.section .noinstr.text, "ax"

SYM_FUNC_START(__tdx_hypercall)
	FRAME_BEGIN

	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx

	push %rdi
	push %rsi

	movq TDX_HYPERCALL_r8(%rdi), %r8
	movq TDX_HYPERCALL_r9(%rdi), %r9
	movq TDX_HYPERCALL_r10(%rdi), %r10
	movq TDX_HYPERCALL_r11(%rdi), %r11
	/* The bug: R12 for the VMM comes from the r13 field. */
	movq TDX_HYPERCALL_r13(%rdi), %r12
	movq TDX_HYPERCALL_r13(%rdi), %r13
	movq TDX_HYPERCALL_r14(%rdi), %r14
	movq TDX_HYPERCALL_r15(%rdi), %r15
	movq TDX_HYPERCALL_rsi(%rdi), %rsi
	movq TDX_HYPERCALL_rbx(%rdi), %rbx
	movq TDX_HYPERCALL_rdx(%rdi), %rdx
	/* It replaces the pointer: last. */
	movq TDX_HYPERCALL_rdi(%rdi), %rdi

	mov $TDG_VP_VMCALL, %rax
	mov $TDVMCALL_EXPOSE_REGS_MASK, %ecx

	testq $TDX_HCALL_ISSUE_STI, (%rsp)
	jz .Lskip_sti
	sti
.Lskip_sti:
	tdcall

	testq %rax, %rax
	jne .Lpanic

	testq $TDX_HCALL_HAS_OUTPUT, (%rsp)
	jz .Lout

	/* RAX is free until the status goes in; @args is one slot up. */
	movq 8(%rsp), %rax
	movq %r8, TDX_HYPERCALL_r8(%rax)
	movq %r9, TDX_HYPERCALL_r9(%rax)
	movq %r10, TDX_HYPERCALL_r10(%rax)
	movq %r11, TDX_HYPERCALL_r11(%rax)
	movq %r12, TDX_HYPERCALL_r12(%rax)
	movq %r13, TDX_HYPERCALL_r13(%rax)
	movq %r14, TDX_HYPERCALL_r14(%rax)
	movq %r15, TDX_HYPERCALL_r15(%rax)
	movq %rdi, TDX_HYPERCALL_rdi(%rax)
	movq %rsi, TDX_HYPERCALL_rsi(%rax)
	movq %rbx, TDX_HYPERCALL_rbx(%rax)
	movq %rdx, TDX_HYPERCALL_rdx(%rax)

.Lout:
	movq %r10, %rax

	/* The VMM's values must not stay in the caller-clobbered registers. */
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %edx, %edx

	/* @flags and @args off the stack, into the registers they came in. */
	pop %rsi
	pop %rdi

	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15

	FRAME_END
	RET

.Lpanic:
	call __tdx_hypercall_failed
	/* never returns */
	REACHABLE
	jmp .Lpanic
SYM_FUNC_END(__tdx_hypercall)
