/* expect-error: line 3: wrong argument */
.macro CHECK x
	.error "wrong argument"
.endm
	CHECK 1
