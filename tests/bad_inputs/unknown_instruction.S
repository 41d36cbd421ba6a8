/* expect-error: line 4: no such instruction */
	.globl f
f:
	frobq %rax
	ret
