/* SPDX-License-Identifier: GPL-2.0 */
/* tdxproof shim: older trees export assembly symbols through <asm/export.h>. */
#ifndef TDXPROOF_SHIM_ASM_EXPORT_H
#define TDXPROOF_SHIM_ASM_EXPORT_H

#include <linux/export.h>

#endif /* TDXPROOF_SHIM_ASM_EXPORT_H */
