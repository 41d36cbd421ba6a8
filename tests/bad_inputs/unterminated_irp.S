/* expect-error: line 2: unterminated .irp */
.irp reg, rax, rbx
	push %\reg
