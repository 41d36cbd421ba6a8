/* expect-error: line 3: unterminated .macro 'FOO' */
	.text
.macro FOO a
	mov \a, %rax
	ret
