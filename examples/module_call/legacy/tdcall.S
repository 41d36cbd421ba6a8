/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof fixture (legacy era): the guest's TDCALL and TDVMCALL wrappers.
 * Written for tdxproof from the ABI in its SPEC section 5.
 */
#include <asm/asm-offsets.h>
#include <asm/asm.h>
#include <asm/frame.h>
#include <asm/unwind_hints.h>

#include <linux/linkage.h>
#include <linux/bits.h>
#include <linux/errno.h>

#include "tdxcall.S"

.section .noinstr.text, "ax"

/*
 * __tdx_module_call() - TDCALL leaf @fn with up to four inputs; RCX, RDX,
 * R8-R11 copied to @out unless it is NULL.
 *
 * u64 __tdx_module_call(u64 fn, u64 rcx, u64 rdx, u64 r8, u64 r9,
 *                       struct tdx_module_output *out);
 */
SYM_FUNC_START(__tdx_module_call)
	FRAME_BEGIN
	TDX_MODULE_CALL host=0
	FRAME_END
	RET
SYM_FUNC_END(__tdx_module_call)

/*
 * TDX_HYPERCALL - TDG.VP.VMCALL with the registers of
 * struct tdx_hypercall_args *args (RDI).
 *
 * Every register in TDVMCALL_EXPOSE_REGS_MASK goes to the VMM and may come
 * back changed.  TDCALL itself failing (RAX != 0) is fatal; otherwise the
 * hypercall's own return code, which the VMM leaves in R10, is the result.
 * With @ret the shared registers are copied back into @args.
 */
.macro TDX_HYPERCALL ret:req
	FRAME_BEGIN

	/* The shared set includes every callee-saved register but RBP. */
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx

	/* RDI is one of the shared registers: keep @args on the stack. */
	push	%rdi

	movq	TDX_HYPERCALL_r8(%rdi),  %r8
	movq	TDX_HYPERCALL_r9(%rdi),  %r9
	movq	TDX_HYPERCALL_r10(%rdi), %r10
	movq	TDX_HYPERCALL_r11(%rdi), %r11
	movq	TDX_HYPERCALL_r12(%rdi), %r12
	movq	TDX_HYPERCALL_r13(%rdi), %r13
	movq	TDX_HYPERCALL_r14(%rdi), %r14
	movq	TDX_HYPERCALL_r15(%rdi), %r15
	movq	TDX_HYPERCALL_rsi(%rdi), %rsi
	movq	TDX_HYPERCALL_rbx(%rdi), %rbx
	movq	TDX_HYPERCALL_rdx(%rdi), %rdx
	/* Last, it replaces the pointer. */
	movq	TDX_HYPERCALL_rdi(%rdi), %rdi

	movq	$TDG_VP_VMCALL, %rax
	movl	$TDVMCALL_EXPOSE_REGS_MASK, %ecx

	tdcall

	/* Nonzero: the TDCALL did not reach the VMM. */
	testq	%rax, %rax
	jne	.Lpanic\@

.if \ret
	/* RAX is spare until the result goes in: reach @args through it. */
	movq	(%rsp), %rax
	movq	%r8,  TDX_HYPERCALL_r8(%rax)
	movq	%r9,  TDX_HYPERCALL_r9(%rax)
	movq	%r10, TDX_HYPERCALL_r10(%rax)
	movq	%r11, TDX_HYPERCALL_r11(%rax)
	movq	%r12, TDX_HYPERCALL_r12(%rax)
	movq	%r13, TDX_HYPERCALL_r13(%rax)
	movq	%r14, TDX_HYPERCALL_r14(%rax)
	movq	%r15, TDX_HYPERCALL_r15(%rax)
	movq	%rdi, TDX_HYPERCALL_rdi(%rax)
	movq	%rsi, TDX_HYPERCALL_rsi(%rax)
	movq	%rbx, TDX_HYPERCALL_rbx(%rax)
	movq	%rdx, TDX_HYPERCALL_rdx(%rax)
.endif

	/* The hypercall's return code */
	movq	%r10, %rax

	/*
	 * Drop the VMM's values from the caller-clobbered shared registers
	 * (the callee-saved ones are reloaded below), so no later speculation
	 * can use them.
	 */
	xorl	%r8d,  %r8d
	xorl	%r9d,  %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d
	xorl	%esi,  %esi
	xorl	%edx,  %edx

	pop	%rdi
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15

	FRAME_END
	RET

.Lpanic\@:
	call	__tdx_hypercall_failed
	/* __tdx_hypercall_failed() does not return. */
	REACHABLE
	jmp	.Lpanic\@
.endm

/*
 * __tdx_hypercall() - a TDVMCALL, outputs other than R10 discarded.
 *
 * u64 __tdx_hypercall(struct tdx_hypercall_args *args);
 */
SYM_FUNC_START(__tdx_hypercall)
	TDX_HYPERCALL ret=0
SYM_FUNC_END(__tdx_hypercall)

/*
 * __tdx_hypercall_ret() - a TDVMCALL whose outputs go back into @args.
 *
 * u64 __tdx_hypercall_ret(struct tdx_hypercall_args *args);
 */
SYM_FUNC_START(__tdx_hypercall_ret)
	TDX_HYPERCALL ret=1
SYM_FUNC_END(__tdx_hypercall_ret)
