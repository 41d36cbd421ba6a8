/* expect-error: line 3: only call/jmp may name an external symbol */
	test %rax, %rax
	jnz somewhere_else
	ret
