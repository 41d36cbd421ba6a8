/* expect-error: line 4: undefined label '.Lmissing' */
	.globl f
f:
	jz .Lmissing
	ret
