/* expect-error: line 2: subsections are not supported */
	.text 1
	nop
