/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof fixture (unified era): one macro behind all six TDX wrappers.
 * Written for tdxproof from the ABI in its SPEC section 5.
 *
 *   u64 fn(u64 leaf, struct tdx_module_args *args)
 *
 * The leaf goes to RAX, the struct's RCX, RDX, R8-R11 to those registers
 * (and with @saved also R12-R15, RBX, RDI, RSI).  With @ret the outputs are
 * stored back into the same struct.  The instruction's RAX is the result.
 *
 * @host:  1 = SEAMCALL (VMX root), 0 = TDCALL (guest)
 * @ret:   1 = write the output registers back to @args
 * @saved: 1 = also pass the callee-saved registers and RDI/RSI; the caller's
 *             values are kept on the stack meanwhile
 */
#include <asm/asm-offsets.h>
#include <asm/frame.h>
#include <asm/asm.h>
#include <asm/tdx.h>

.macro TDX_MODULE_CALL host:req ret=0 saved=0
	FRAME_BEGIN

	/* RAX = leaf */
	mov	%rdi, %rax

	/* The inputs every leaf may read */
	movq	TDX_MODULE_rcx(%rsi), %rcx
	movq	TDX_MODULE_rdx(%rsi), %rdx
	movq	TDX_MODULE_r8(%rsi),  %r8
	movq	TDX_MODULE_r9(%rsi),  %r9
	movq	TDX_MODULE_r10(%rsi), %r10
	movq	TDX_MODULE_r11(%rsi), %r11

.if \saved
	/*
	 * Leaves that take R12-R15/RBX as inputs may also change RDI and RSI
	 * (TDH.VP.ENTER does), so this form loads and stores all of them.
	 * Keep the caller's callee-saved values first.
	 */
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15

	movq	TDX_MODULE_r12(%rsi), %r12
	movq	TDX_MODULE_r13(%rsi), %r13
	movq	TDX_MODULE_r14(%rsi), %r14
	movq	TDX_MODULE_r15(%rsi), %r15
	movq	TDX_MODULE_rbx(%rsi), %rbx

.if \ret
	/* RSI becomes an input below; the pointer is needed again after. */
	pushq	%rsi
.endif

	movq	TDX_MODULE_rdi(%rsi), %rdi
	/* Overwrites the struct pointer, so it comes last. */
	movq	TDX_MODULE_rsi(%rsi), %rsi
.endif	/* \saved */

.if \host
.Lseamcall\@:
	seamcall
	/*
	 * VMfailInvalid (CF=1): no SEAM module answered, RAX still holds the
	 * leaf.  Turn it into a status no real leaf returns.
	 */
	jc	.Lseamcall_vmfailinvalid\@
.else
	tdcall
.endif

.if \ret
.if \saved
	/*
	 * No register is free here: after TDH.VP.ENTER every GPR but RSP and
	 * RBP may carry an output.  Park the status on the stack, borrow RAX
	 * for the struct pointer just above it, store RSI, then take both back.
	 */
	pushq	%rax
	movq	8(%rsp), %rax
	movq	%rsi, TDX_MODULE_rsi(%rax)
	popq	%rax
	popq	%rsi

	movq	%r12, TDX_MODULE_r12(%rsi)
	movq	%r13, TDX_MODULE_r13(%rsi)
	movq	%r14, TDX_MODULE_r14(%rsi)
	movq	%r15, TDX_MODULE_r15(%rsi)
	movq	%rbx, TDX_MODULE_rbx(%rsi)
	movq	%rdi, TDX_MODULE_rdi(%rsi)
.endif	/* \saved */

	/* The outputs every leaf may produce */
	movq	%rcx, TDX_MODULE_rcx(%rsi)
	movq	%rdx, TDX_MODULE_rdx(%rsi)
	movq	%r8,  TDX_MODULE_r8(%rsi)
	movq	%r9,  TDX_MODULE_r9(%rsi)
	movq	%r10, TDX_MODULE_r10(%rsi)
	movq	%r11, TDX_MODULE_r11(%rsi)
.endif	/* \ret */

.if \saved && \ret
	/*
	 * Values the module or the VMM chose must not outlive the call in a
	 * register where a mispredicted branch could consume them.  RSI holds
	 * the caller's pointer again, the callee-saved ones are reloaded below;
	 * clear the rest.  Unconditional: xor is cheaper than deciding.
	 */
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%r8d, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d
	xorl	%edi, %edi
.endif	/* \saved && \ret */

.if \host
.Lseamcall_out\@:
.endif

.if \saved
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
.endif	/* \saved */

	FRAME_END
	RET

.if \host
.Lseamcall_vmfailinvalid\@:
	mov	$TDX_SEAMCALL_VMFAILINVALID, %rax
	jmp	.Lseamcall_fail\@

.Lseamcall_trap\@:
	/*
	 * SEAMCALL raised #UD or #GP and the exception fixup brought us here
	 * with the trap number in RAX.  Tag it with the software-error class;
	 * `or` cannot take a 64-bit immediate, so go through RDI (an input we
	 * no longer need).
	 */
	movq	$TDX_SW_ERROR, %rdi
	orq	%rdi, %rax

.Lseamcall_fail\@:
.if \saved && \ret
	/* Nothing is written back: drop the struct pointer saved above. */
	popq	%rsi
.endif
	jmp	.Lseamcall_out\@

	_ASM_EXTABLE_FAULT(.Lseamcall\@, .Lseamcall_trap\@)
.endif	/* \host */
.endm
