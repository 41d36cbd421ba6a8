/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof fixture (unified era): the guest's TDCALL wrappers.
 * Written for tdxproof from the ABI in its SPEC section 5.
 *
 * The TDVMCALL glue that calls __tdcall_saved_ret() is C (hcall_glue.c).
 */
#include <asm/asm-offsets.h>
#include <asm/asm.h>
#include <asm/frame.h>
#include <asm/unwind_hints.h>

#include <linux/linkage.h>
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/export.h>

#include "tdxcall.S"

.section .noinstr.text, "ax"

/*
 * __tdcall() - TDCALL with the six basic inputs from @args, no outputs.
 *
 * u64 __tdcall(u64 fn, struct tdx_module_args *args);
 *
 * Returns the TDCALL status in RAX.
 */
SYM_FUNC_START(__tdcall)
	TDX_MODULE_CALL 0
SYM_FUNC_END(__tdcall)
EXPORT_SYMBOL_GPL(__tdcall)

/*
 * __tdcall_ret() - as __tdcall(), and RCX, RDX, R8-R11 are stored back.
 *
 * u64 __tdcall_ret(u64 fn, struct tdx_module_args *args);
 */
SYM_FUNC_START(__tdcall_ret)
	TDX_MODULE_CALL 0, 1
SYM_FUNC_END(__tdcall_ret)

/*
 * __tdcall_saved_ret() - every register of struct tdx_module_args in and
 * out; the TDG.VP.VMCALL path uses it with RCX = the exposure bitmap.
 *
 * u64 __tdcall_saved_ret(u64 fn, struct tdx_module_args *args);
 */
SYM_FUNC_START(__tdcall_saved_ret)
	TDX_MODULE_CALL 0, 1, 1
SYM_FUNC_END(__tdcall_saved_ret)
