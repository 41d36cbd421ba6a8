/* expect-error: line 3: data ('.long') in code section */
	.section .noinstr.text, "ax"
	.long 5
