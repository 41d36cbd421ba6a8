/* expect-error: line 2: '.exitm' outside a macro */
	.exitm
