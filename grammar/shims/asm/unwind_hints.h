/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: ORC unwinder hints.  They describe the stack to the
 * unwinder and emit no code, so each is an assembler macro that takes the
 * kernel's keyword parameters (`UNWIND_HINT_REGS base=%rsp offset=8`) and
 * ignores them.
 */
#ifndef TDXPROOF_SHIM_ASM_UNWIND_HINTS_H
#define TDXPROOF_SHIM_ASM_UNWIND_HINTS_H

#include <linux/objtool.h>

#ifdef __ASSEMBLY__

.macro UNWIND_HINT_EMPTY
.endm
.macro UNWIND_HINT_UNDEFINED
.endm
.macro UNWIND_HINT_END_OF_STACK
.endm
.macro UNWIND_HINT_FUNC
.endm
.macro UNWIND_HINT_SAVE
.endm
.macro UNWIND_HINT_RESTORE
.endm
.macro UNWIND_HINT_ENTRY
.endm
.macro UNWIND_HINT_REGS base=%rsp offset=0 indirect=0 extra=1 partial=0 signal=1
.endm
.macro UNWIND_HINT_IRET_REGS base=%rsp offset=0 signal=1
.endm
.macro UNWIND_HINT_IRET_ENTRY base=%rsp offset=0 signal=1
.endm

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_ASM_UNWIND_HINTS_H */
