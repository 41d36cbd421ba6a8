/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: symbol annotations for assembly.  SYM_FUNC_START makes an
 * aligned global function symbol (with ENDBR under IBT), SYM_FUNC_END gives
 * it a type and size; those pairs are the function boundaries.  SYM_CODE_*
 * mark code that does not follow the C calling convention the same way,
 * without ENDBR, typed as no type (the kernel's SYM_T_NONE).
 */
#ifndef TDXPROOF_SHIM_LINUX_LINKAGE_H
#define TDXPROOF_SHIM_LINUX_LINKAGE_H

#include <asm/linkage.h>

#ifdef __ASSEMBLY__

#define ALIGN __ALIGN

#define SYM_ENTRY_GLOBAL(name)	.globl name ; name:
#define SYM_ENTRY_LOCAL(name)	name:

#define SYM_FUNC_START(name)		ALIGN ; SYM_ENTRY_GLOBAL(name) ENDBR
#define SYM_FUNC_START_NOALIGN(name)	SYM_ENTRY_GLOBAL(name) ENDBR
#define SYM_FUNC_START_LOCAL(name)	ALIGN ; SYM_ENTRY_LOCAL(name) ENDBR
#define SYM_FUNC_START_WEAK(name)	ALIGN ; .weak name ; name: ENDBR
#define SYM_FUNC_END(name)		.type name, @function ; .size name, .-name

#define SYM_CODE_START(name)		ALIGN ; SYM_ENTRY_GLOBAL(name)
#define SYM_CODE_START_LOCAL(name)	ALIGN ; SYM_ENTRY_LOCAL(name)
#define SYM_CODE_START_NOALIGN(name)	SYM_ENTRY_GLOBAL(name)
#define SYM_CODE_START_LOCAL_NOALIGN(name)	SYM_ENTRY_LOCAL(name)
#define SYM_CODE_END(name)		.type name, @notype ; .size name, .-name

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_LINUX_LINKAGE_H */
