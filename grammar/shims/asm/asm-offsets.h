/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: the byte offsets a kernel build would generate into
 * asm-offsets.h for the TDX argument structures (tdxproof SPEC section 5).
 * Every field is a u64 but the version byte.  A kernel tree passed with -I
 * replaces this file.
 *
 * struct tdx_hypercall_args had two layouts under the same macro names:
 * twelve registers (the default here) and, in the oldest trees (v5.19),
 * only r10..r15 at 0..40.  TDXPROOF_HYPERCALL_ARGS_R10_R15 selects the
 * second; tdxproof defines it itself for a file whose TDX_HYPERCALL_* uses
 * are all among r10..r15 (grammar/shim_layout.py), and -D or -U of it on
 * the command line forces the choice.
 */
#ifndef TDXPROOF_SHIM_ASM_ASM_OFFSETS_H
#define TDXPROOF_SHIM_ASM_ASM_OFFSETS_H

/* struct tdx_module_args; struct tdx_module_output shares rcx..r11. */
#define TDX_MODULE_rcx 0
#define TDX_MODULE_rdx 8
#define TDX_MODULE_r8 16
#define TDX_MODULE_r9 24
#define TDX_MODULE_r10 32
#define TDX_MODULE_r11 40
#define TDX_MODULE_r12 48
#define TDX_MODULE_r13 56
#define TDX_MODULE_r14 64
#define TDX_MODULE_r15 72
#define TDX_MODULE_rbx 80
#define TDX_MODULE_rdi 88
#define TDX_MODULE_rsi 96
/* A byte-wide field after the registers in recent trees. */
#define TDX_MODULE_version 104

#ifdef TDXPROOF_HYPERCALL_ARGS_R10_R15

/* struct tdx_hypercall_args (oldest trees: R10-R15 only). */
#define TDX_HYPERCALL_r10 0
#define TDX_HYPERCALL_r11 8
#define TDX_HYPERCALL_r12 16
#define TDX_HYPERCALL_r13 24
#define TDX_HYPERCALL_r14 32
#define TDX_HYPERCALL_r15 40

#else

/* struct tdx_hypercall_args (legacy era, twelve registers). */
#define TDX_HYPERCALL_r8 0
#define TDX_HYPERCALL_r9 8
#define TDX_HYPERCALL_r10 16
#define TDX_HYPERCALL_r11 24
#define TDX_HYPERCALL_r12 32
#define TDX_HYPERCALL_r13 40
#define TDX_HYPERCALL_r14 48
#define TDX_HYPERCALL_r15 56
#define TDX_HYPERCALL_rdi 64
#define TDX_HYPERCALL_rsi 72
#define TDX_HYPERCALL_rbx 80
#define TDX_HYPERCALL_rdx 88

#endif /* TDXPROOF_HYPERCALL_ARGS_R10_R15 */

#endif /* TDXPROOF_SHIM_ASM_ASM_OFFSETS_H */
