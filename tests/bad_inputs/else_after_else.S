/* expect-error: line 5: '.else' after '.else' */
.if 1
.else
	nop
.else
.endif
