/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: single-bit masks.  In assembly the C integer suffixes are
 * dropped, so BIT(n) is a plain (1 << (n)) the assembler evaluates in 64 bits.
 */
#ifndef TDXPROOF_SHIM_LINUX_BITS_H
#define TDXPROOF_SHIM_LINUX_BITS_H

#ifdef __ASSEMBLY__
#define BIT(nr)		(1 << (nr))
#define BIT_ULL(nr)	(1 << (nr))
#else
#define BIT(nr)		(1UL << (nr))
#define BIT_ULL(nr)	(1ULL << (nr))
#endif

#endif /* TDXPROOF_SHIM_LINUX_BITS_H */
