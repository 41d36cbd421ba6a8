/* expect-error: line 3: not UTF-8 text */
	nop
	nop # café
