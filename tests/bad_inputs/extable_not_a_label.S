/* expect-error: line 5: is not of the form 'label - .' */
f:
1:	mov (%rdi), %rax
	.pushsection __ex_table, "a"
	.long 1b, 2f - ., 2
	.popsection
2:	ret
