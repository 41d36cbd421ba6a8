/* expect-error: line 3: symbol 'foo' is already defined */
foo:	nop
foo:	ret
