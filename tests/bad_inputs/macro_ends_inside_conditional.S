/* expect-error: line 3: end of macro inside conditional */
.macro OPEN
.if 1
.endm
	OPEN
	nop
.endif
