/* expect-error: line 3: nested too deeply */
.macro LOOP n
	LOOP "\n+1"
.endm
	LOOP 0
