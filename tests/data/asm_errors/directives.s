	.bogus 1
	.align 3, 0, 0
	.byte 300
	.org 0
	.space undefined_later
undefined_later:
	.include "no_such_file.inc"
	.align 40
