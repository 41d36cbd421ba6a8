/* expect-error: line 3: '.endif' without a matching '.if' */
	nop
	.endif
