/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: exported-symbol records.  Each export is a pointer to the
 * symbol and a licence byte (1 = GPL only) in a data section; no code.
 */
#ifndef TDXPROOF_SHIM_LINUX_EXPORT_H
#define TDXPROOF_SHIM_LINUX_EXPORT_H

#ifdef __ASSEMBLY__

#define __EXPORT_SYMBOL(sym, gpl)		\
	.pushsection .export_symbol, "a" ;	\
	.balign 8 ;				\
	.quad sym ;				\
	.byte gpl ;				\
	.popsection

#define EXPORT_SYMBOL(sym)	__EXPORT_SYMBOL(sym, 0)
#define EXPORT_SYMBOL_GPL(sym)	__EXPORT_SYMBOL(sym, 1)

#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_LINUX_EXPORT_H */
