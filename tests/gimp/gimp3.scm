; GIMP 3's names for what tests/gimp/cases.scm does (gimp2.scm has GIMP 2.10's).
(define (load-photo photo) (car (gimp-file-load RUN-NONINTERACTIVE photo)))
(define (active-drawable img) (vector-ref (car (gimp-image-get-selected-drawables img)) 0))
(define (drawable-box d)
  (let ((offsets (gimp-drawable-get-offsets d)))
    (list (car offsets) (cadr offsets) (car (gimp-drawable-get-width d)) (car (gimp-drawable-get-height d)))))
(define (layer-count img) (vector-length (car (gimp-image-get-layers img))))
; GIMP 3 exports whole images: a drawable alone goes through an image of its own.
(define (save img drawable file)
  (let* ((box (drawable-box drawable))
         (alone (car (gimp-image-new (caddr box) (cadddr box) RGB)))
         (copy (car (gimp-layer-new-from-drawable drawable alone))))
    (gimp-image-insert-layer alone copy 0 0)
    (gimp-layer-set-offsets copy 0 0)
    (gimp-file-save RUN-NONINTERACTIVE alone file)
    (gimp-image-delete alone)))
(define (save-merged img file)
  (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)
  (gimp-file-save RUN-NONINTERACTIVE img file))
(define (new-layer img w h name) (car (gimp-layer-new img name w h RGB-IMAGE 100 LAYER-MODE-NORMAL)))
(define (texture img layer) (gimp-drawable-edit-gradient-fill layer GRADIENT-RADIAL 0 FALSE 1 0 TRUE 200 150 260 190))
(define PRECISION-U16 PRECISION-U16-NON-LINEAR)

; Set by the test before a session: what GIMP 3 passes as arguments (2.10: environment).
(define inpaint-lora "")
(define inpaint-vae "full")

; Named arguments; those left out (guidance, strength, scheduler, context, ...) take
; their defaults, which are the values gimp2.scm passes.
(define (inpaint-steps img drawable model steps)
  (car (plug-in-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector drawable)
                        #:prompt "a red ball" #:model model #:steps steps #:seed 42
                        #:lora inpaint-lora #:vae inpaint-vae)))

; A setting the engine refuses (GIMP itself refuses out-of-range numbers): its message
; must name the dialog's label ("Memory limit").
(define (bad-setting img drawable model)
  (plug-in-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector drawable) #:model model
                   #:max-memory "lots"))

; GIMP 3 only: the positional form, GIMP's own range check, several layers selected.
(define (version-cases photo model out)
  (let* ((img (load-photo photo)) (drawable (active-drawable img)))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 120 200 160)
    (gimp-selection-feather img 30)
    (let ((layer (car (plug-in-inpaint RUN-NONINTERACTIVE img (vector drawable) "a red ball" "" model 3 7.5 1.0 42
                                       "default" -1 "" "full" "" 0 8 8 0 FALSE "auto"))))
      (apply fact "positional-layer" (drawable-box layer))
      (save-merged img (string-append out "/positional-merged.png"))))
  (let* ((img (load-photo photo)) (drawable (active-drawable img)) (before (layer-count img)))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 100 100 80 80)
    (catch (fact "out-of-range" "failed")
           (begin (plug-in-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector drawable)
                                   #:model model #:steps 0)
                  (fact "out-of-range" "succeeded")))
    (let ((second (new-layer img 100 100 "second")))
      (gimp-image-insert-layer img second 0 -1)
      (catch (fact "two-layers" "failed")
             (begin (plug-in-inpaint #:run-mode RUN-NONINTERACTIVE #:image img #:drawables (vector drawable second)
                                     #:model model #:steps 3)
                    (fact "two-layers" "succeeded")))
      (fact "version-layers" (+ before 1) (layer-count img)))))
