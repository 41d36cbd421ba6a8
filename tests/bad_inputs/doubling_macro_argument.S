/* expect-error: line 3: a statement of more than 65536 bytes exceeds the limit of 65536 bytes */
.macro GROW text
GROW "\text\text"
.endm
GROW 0123456789abcdef
