/* expect-error: line 4: unsupported: symbol 'KEY' set to the register %rdi */
	.text
	.globl f
	.set KEY, %rdi
f:
	movq (KEY), %rax
	ret
