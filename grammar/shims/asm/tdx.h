/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: TDX status values and TDVMCALL constants (SPEC section 5),
 * written so that both the assembler and C can read them.
 */
#ifndef TDXPROOF_SHIM_ASM_TDX_H
#define TDXPROOF_SHIM_ASM_TDX_H

#include <linux/bits.h>

/* A 64-bit constant: C needs the suffix, the assembler rejects it. */
#ifdef __ASSEMBLY__
#define __TDX_U64(x)	x
#else
#define __TDX_U64(x)	x##ULL
#endif

/* Bit 63: the status is an error. */
#define TDX_ERROR			BIT_ULL(63)
/* Software-defined error class: bits 47..40 all set. */
#define TDX_SW_ERROR			(TDX_ERROR | (__TDX_U64(0xFF) << 40))
/* SEAMCALL returned with CF=1: no SEAM module loaded or it is busy. */
#define TDX_SEAMCALL_VMFAILINVALID	(TDX_SW_ERROR | __TDX_U64(0xFFFF0000))
/* SEAMCALL faulted: the trap number in the low bits. */
#define TDX_SEAMCALL_UD			(TDX_SW_ERROR | 6)
#define TDX_SEAMCALL_GP			(TDX_SW_ERROR | 13)

/*
 * The same two values under the names some vendor trees give them.  (A
 * status these headers do not define, such as a VMfailValid code, stays
 * undefined: its value must come from the tree, or from -D NAME=VALUE.)
 */
#define TDX_ERR_SW_ERROR		TDX_SW_ERROR
#define TDX_ERR_SEAMCALL_VMFAILINVALID	TDX_SEAMCALL_VMFAILINVALID

/* TDCALL leaf 0: TDG.VP.VMCALL, the hypercall to the host VMM. */
#define TDG_VP_VMCALL			0

/*
 * Registers a TDG.VP.VMCALL shares with the VMM, as a bitmap in RCX:
 * RDX(2) RBX(3) RSI(6) RDI(7) R8..R15(8..15).  Older files define their
 * own value after including this header; that is only a redefinition.
 */
#define TDVMCALL_EXPOSE_REGS_MASK	0xFFCC

/* Flags of the older __tdx_hypercall(args, flags). */
#define TDX_HCALL_HAS_OUTPUT		BIT(0)
#define TDX_HCALL_ISSUE_STI		BIT(1)

/* TDX_FEATURES0: the module no longer modifies RBP in TDH.VP.ENTER. */
#define TDX_FEATURES0_NO_RBP_MOD	BIT_ULL(18)

#endif /* TDXPROOF_SHIM_ASM_TDX_H */
