	li r3, 1
	frobnicate r3, r4
	addi r3, r3, 1
