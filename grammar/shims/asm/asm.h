/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: kernel exception-table entries.  An entry is three
 * 32-bit words in section __ex_table: the faulting instruction and the
 * fixup, each relative to the word's own address, then the handler type.
 * EX_TYPE_FAULT resumes at the fixup with the trap number in RAX.
 */
#ifndef TDXPROOF_SHIM_ASM_ASM_H
#define TDXPROOF_SHIM_ASM_ASM_H

#define EX_TYPE_DEFAULT		1
#define EX_TYPE_FAULT		2

#ifdef __ASSEMBLY__

#define _ASM_EXTABLE_TYPE(from, to, type)			\
	.pushsection "__ex_table","a" ;				\
	.balign 4 ;						\
	.long (from) - . ;					\
	.long (to) - . ;					\
	.long type ;						\
	.popsection

#define _ASM_EXTABLE(from, to)		_ASM_EXTABLE_TYPE(from, to, EX_TYPE_DEFAULT)
#define _ASM_EXTABLE_FAULT(from, to)	_ASM_EXTABLE_TYPE(from, to, EX_TYPE_FAULT)

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_ASM_ASM_H */
