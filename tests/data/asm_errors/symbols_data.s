	.equiv F, 1
	.set F, 2
	.eqv G, 1
	G = 2
	.bss
	.long 1
	.text
	.section .x, ax
	.section .y, "a", @bogus
	mtspr lr, r3
	li r3, lr
	.byte "ab" 1
	.ascii "a" x
	.ascii "open
	. = 0
	.byte 1
	.balignl 8, 0x11223344
