/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tdxproof shim: frame-pointer prologue and epilogue.  With
 * CONFIG_FRAME_POINTER, FRAME_BEGIN pushes RBP and points it at the new
 * frame, FRAME_END pops it, and FRAME_OFFSET is the 8 bytes that push adds
 * between RSP and the caller's stack arguments; without it all are empty/0.
 */
#ifndef TDXPROOF_SHIM_ASM_FRAME_H
#define TDXPROOF_SHIM_ASM_FRAME_H

#ifdef __ASSEMBLY__
#ifdef CONFIG_FRAME_POINTER

.macro FRAME_BEGIN
	push %rbp
	mov %rsp, %rbp
.endm

.macro FRAME_END
	pop %rbp
.endm

#define FRAME_OFFSET 8

#else /* !CONFIG_FRAME_POINTER */

#define FRAME_BEGIN
#define FRAME_END
#define FRAME_OFFSET 0

#endif /* CONFIG_FRAME_POINTER */
#endif /* __ASSEMBLY__ */

#endif /* TDXPROOF_SHIM_ASM_FRAME_H */
