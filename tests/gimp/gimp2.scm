; GIMP 2.10's names for what tests/gimp/cases.scm does (gimp3.scm has GIMP 3's).
(define (load-photo photo) (car (gimp-file-load RUN-NONINTERACTIVE photo photo)))
(define (active-drawable img) (car (gimp-image-get-active-drawable img)))
(define (drawable-box d)
  (let ((offsets (gimp-drawable-offsets d)))
    (list (car offsets) (cadr offsets) (car (gimp-drawable-width d)) (car (gimp-drawable-height d)))))
(define (layer-count img) (car (gimp-image-get-layers img)))
(define (save img drawable file) (file-png-save-defaults RUN-NONINTERACTIVE img drawable file file))
(define (save-merged img file) (save img (car (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)) file))
(define (new-layer img w h name) (car (gimp-layer-new img w h RGB-IMAGE name 100 LAYER-MODE-NORMAL)))
(define (texture img layer) (plug-in-plasma RUN-NONINTERACTIVE img layer 7 2.0))
(define PRECISION-U16 PRECISION-U16-GAMMA)

; Positional, every parameter (2.10 has no defaults); LoRAs and TAESD come from
; INPAINT_LORAS / INPAINT_VAE in the environment.
(define (inpaint-steps img drawable model steps)
  (car (plug-in-inpaint RUN-NONINTERACTIVE img drawable "a red ball" "" model steps 7.5 1.0 42 "" -1)))

; A setting the engine refuses: its message must name the dialog's label ("Steps").
(define (bad-setting img drawable model)
  (plug-in-inpaint RUN-NONINTERACTIVE img drawable "x" "" model 0 7.5 1.0 42 "" -1))

(define (version-cases photo model out) #t)
