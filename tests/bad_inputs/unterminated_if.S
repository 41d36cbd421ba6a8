/* expect-error: line 4: unterminated conditional */
.if 1
.endif
.if 0
	ret
