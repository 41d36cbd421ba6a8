/* expect-error: line 2: bad instruction */
	movq %rax, 8(%rsi
