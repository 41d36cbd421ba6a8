/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: objtool annotations.  They only inform the kernel's object
 * checker, so every one expands to nothing; they are assembler macros that
 * accept (and ignore) whatever arguments a file passes.
 */
#ifndef TDXPROOF_SHIM_LINUX_OBJTOOL_H
#define TDXPROOF_SHIM_LINUX_OBJTOOL_H

#ifdef __ASSEMBLY__

.macro REACHABLE
.endm
.macro ANNOTATE_NOENDBR
.endm
.macro ANNOTATE_RETPOLINE_SAFE
.endm
.macro ANNOTATE_UNRET_SAFE
.endm
.macro ANNOTATE_INTRA_FUNCTION_CALL
.endm
.macro ANNOTATE_NOINSTR_ALLOWED
.endm
.macro STACK_FRAME_NON_STANDARD func:req
.endm
.macro STACK_FRAME_NON_STANDARD_FP func:req
.endm

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_LINUX_OBJTOOL_H */
