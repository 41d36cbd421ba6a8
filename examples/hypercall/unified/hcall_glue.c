// SPDX-License-Identifier: GPL-2.0
/*
 * tdxproof fixture (unified era): the TDVMCALL glue, in C.
 * Written for tdxproof from the ABI in its SPEC section 5; compiled with
 * `cc -S -O2` by the tests and checked together with tdcall.S.
 *
 * In this era the hypercall's own return code (R10) reaches the caller
 * through args->r10: the glue, not the assembly, does the R10->RAX step.
 */
typedef unsigned long long u64;

struct tdx_module_args {
	u64 rcx;
	u64 rdx;
	u64 r8;
	u64 r9;
	u64 r10;
	u64 r11;
	u64 r12;
	u64 r13;
	u64 r14;
	u64 r15;
	u64 rbx;
	u64 rdi;
	u64 rsi;
};

/* TDCALL leaf 0: TDG.VP.VMCALL. */
#define TDG_VP_VMCALL			0
/* RDX, RBX, RSI, RDI and R8-R15 are shared with the VMM. */
#define TDVMCALL_EXPOSE_REGS_MASK	0xFFCCULL

u64 __tdcall_saved_ret(u64 fn, struct tdx_module_args *args);
void __tdx_hypercall_failed(void) __attribute__((__noreturn__));

u64 __tdx_hypercall(struct tdx_module_args *args)
{
	/* The caller fills the shared registers; which ones is ours to say. */
	args->rcx = TDVMCALL_EXPOSE_REGS_MASK;

	/* A failing TDCALL means the TDX module itself is broken: no way on. */
	if (__tdcall_saved_ret(TDG_VP_VMCALL, args) != 0)
		__tdx_hypercall_failed();

	/* The VMM's answer to the hypercall. */
	return args->r10;
}
