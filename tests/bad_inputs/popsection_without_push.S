/* expect-error: line 3: .popsection without a matching .pushsection */
	nop
	.popsection
