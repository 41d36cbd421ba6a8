/* expect-error: line 4: undefined label '.Lfixup' in __ex_table entry */
1:	mov (%rdi), %rax
	.pushsection __ex_table, "a"
	.long 1b - ., .Lfixup - ., 2
	.popsection
