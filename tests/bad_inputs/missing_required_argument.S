/* expect-error: line 5: missing value for required parameter 'host' */
.macro CALL host:req ret=0
	nop
.endm
	CALL ret=1
