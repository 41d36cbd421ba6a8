/* expect-error: line 3: unknown directive '.frobnicate' */
	nop
	.frobnicate 1, 2
