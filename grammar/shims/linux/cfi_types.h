/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: kCFI-typed function starts.  The type-hash preamble that
 * CONFIG_CFI_CLANG adds before the symbol is data the model does not need,
 * so a typed start is an ordinary SYM_FUNC_START.
 */
#ifndef TDXPROOF_SHIM_LINUX_CFI_TYPES_H
#define TDXPROOF_SHIM_LINUX_CFI_TYPES_H

#include <linux/linkage.h>

#ifdef __ASSEMBLY__
#define SYM_TYPED_FUNC_START(name)	SYM_FUNC_START(name)
#endif

#endif /* TDXPROOF_SHIM_LINUX_CFI_TYPES_H */
