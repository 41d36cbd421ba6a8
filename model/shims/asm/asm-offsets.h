/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: the byte offsets a kernel build would generate into
 * asm-offsets.h for the TDX argument structures (tdxproof SPEC section 5).
 * Every field is a u64.  A kernel tree passed with -I replaces this file.
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

#endif /* TDXPROOF_SHIM_ASM_ASM_OFFSETS_H */
