/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: x86 function alignment, return and branch-target markers.
 * RET is `ret` plus an int3 against straight-line speculation, or with
 * CONFIG_RETHUNK a jump to the return thunk (a return, for the model).
 * ENDBR is endbr64 under CONFIG_X86_KERNEL_IBT.
 */
#ifndef TDXPROOF_SHIM_ASM_LINKAGE_H
#define TDXPROOF_SHIM_ASM_LINKAGE_H

#ifdef __ASSEMBLY__

#define __ALIGN		.p2align 4, 0x90
#define __ALIGN_STR	".p2align 4, 0x90"

#ifdef CONFIG_RETHUNK
#define RET	jmp __x86_return_thunk
#else
#define RET	ret; int3
#endif

#ifdef CONFIG_X86_KERNEL_IBT
#define ENDBR	endbr64
#else
#define ENDBR
#endif

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_ASM_LINKAGE_H */
