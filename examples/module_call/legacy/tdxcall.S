/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof fixture (legacy era): the module-call macro shared by the guest's
 * __tdx_module_call() and the host's __seamcall().
 * Written for tdxproof from the ABI in its SPEC section 5.
 *
 *   u64 fn(u64 fn, u64 rcx, u64 rdx, u64 r8, u64 r9,
 *          struct tdx_module_output *out);
 *
 * C arguments arrive in RDI, RSI, RDX, RCX, R8, R9; the instruction wants
 * the leaf in RAX and its inputs in RCX, RDX, R8, R9.  RCX, RDX, R8-R11 are
 * copied to @out afterwards when @out is not NULL.
 *
 * The leaves these wrappers serve leave R12-R15 alone, so the callee-saved
 * R12 (saved first) holds @out across the call.  The caller provides the
 * frame and the return.
 */
#include <asm/asm-offsets.h>
#include <asm/asm.h>
#include <asm/tdx.h>

.macro TDX_MODULE_CALL host:req
	push	%r12
	/* @out, fetched back into R12 once the instruction is done */
	push	%r9

	/* Shuffle the C arguments into place; R9 must be read before written. */
	mov	%rdi, %rax
	mov	%r8,  %r9
	mov	%rcx, %r8
	mov	%rsi, %rcx
	/* RDX is already where both ABIs want it. */

.if \host
1:
	seamcall
	/* CF=1: VMfailInvalid, nothing ran and RAX is unchanged. */
	jnc	2f
	mov	$TDX_SEAMCALL_VMFAILINVALID, %rax
	jmp	4f
3:
	/*
	 * Reached through the exception table when SEAMCALL faults, with the
	 * trap number in RAX.  R12 is ours until the final pop.
	 */
	movq	$TDX_SW_ERROR, %r12
	orq	%r12, %rax
4:
	/* Failed: discard @out, report nothing through it. */
	addq	$8, %rsp
	jmp	5f

	_ASM_EXTABLE_FAULT(1b, 3b)
2:
.else
	tdcall
.endif

	pop	%r12
	/* @out may be NULL: the caller wants no outputs then. */
	test	%r12, %r12
	jz	5f

	movq	%rcx, TDX_MODULE_rcx(%r12)
	movq	%rdx, TDX_MODULE_rdx(%r12)
	movq	%r8,  TDX_MODULE_r8(%r12)
	movq	%r9,  TDX_MODULE_r9(%r12)
	movq	%r10, TDX_MODULE_r10(%r12)
	movq	%r11, TDX_MODULE_r11(%r12)
5:
	pop	%r12
.endm
