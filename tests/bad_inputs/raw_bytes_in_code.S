/* expect-error: line 3: raw bytes in code section */
	.text
	.byte 0x0f, 0x0b
