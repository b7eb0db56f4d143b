; Script-Fu cases for the plug-in test (tests/test_gimp_plugin.cpp), for both GIMPs:
; loaded after gimp2.scm or gimp3.scm, which give each GIMP's names for the same steps.
; Each case writes "FACT ..." lines to out/facts.txt (gimp-console does not show
; `display`), and saves PNGs into `out`.

(define facts-port #f)

(define (fact . xs)
  (display "FACT" facts-port)
  (for-each (lambda (x) (display " " facts-port) (display x facts-port)) xs)
  (newline facts-port))

(define (layer-facts tag layer) (apply fact tag (drawable-box layer)))

(define (inpaint img drawable model) (inpaint-steps img drawable model 3))

; A feathered ellipse on a real photo: the layer, the selection, the merged image.
(define (case-photo photo model out)
  (let* ((img (load-photo photo))
         (drawable (active-drawable img)))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 120 200 160)
    (gimp-selection-feather img 30)
    (save img (car (gimp-selection-save img)) (string-append out "/photo-selection.png"))
    (let ((layer (inpaint img drawable model)))
      (layer-facts "photo-layer" layer)
      (fact "photo-name" (car (gimp-item-get-name layer)))
      (fact "photo-layers" (layer-count img))
      (save img layer (string-append out "/photo-layer.png"))
      (save-merged img (string-append out "/photo-merged.png")))))

; Errors: the call fails with a message and the image keeps its layers.
(define (expect-error tag img drawable model)
  (let ((before (layer-count img)))
    (catch (fact tag "failed")
           (begin (inpaint img drawable model) (fact tag "succeeded")))
    (fact (string-append tag "-layers") before (layer-count img))))

(define (case-no-selection photo model)
  (let* ((img (load-photo photo)) (drawable (active-drawable img)))
    (gimp-selection-none img)
    (expect-error "no-selection" img drawable model)))

; A setting the engine refuses: the message names the dialog's setting, not a CLI option.
(define (case-bad-steps photo model)
  (let* ((img (load-photo photo)) (drawable (active-drawable img)))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 100 100 80 80)
    (let ((before (layer-count img)))
      (catch (fact "bad-steps" "failed")
             (begin (bad-setting img drawable model) (fact "bad-steps" "succeeded")))
      (fact "bad-steps-layers" before (layer-count img)))))

(define (case-indexed photo model)
  (let* ((img (load-photo photo)) (drawable 0))
    (gimp-image-convert-indexed img CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 64 FALSE FALSE "")
    (set! drawable (active-drawable img))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 100 100 80 80)
    (expect-error "indexed" img drawable model)))

; A 200x150 layer at (120, 90) of a 400x300 image, the selection half outside it.
(define (case-offset-layer photo model out)
  (let* ((img (load-photo photo))
         (layer (new-layer img 200 150 "small")))
    (gimp-image-resize img 400 300 0 0)
    (gimp-image-insert-layer img layer 0 -1)
    (gimp-layer-set-offsets layer 120 90)
    (gimp-drawable-fill layer FILL-WHITE)
    (texture img layer)
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 60 40 180 140)
    (layer-facts "offset-layer" (inpaint img layer model))))

(define (case-rgba photo model)
  (let* ((img (load-photo photo)) (drawable (active-drawable img)))
    (gimp-layer-add-alpha drawable)
    (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 40 40 64 48)
    (layer-facts "rgba-layer" (inpaint img drawable model))
    (fact "rgba-alpha" (car (gimp-drawable-has-alpha drawable)))))

(define (case-precision photo model out tag precision)
  (let* ((img (load-photo photo)) (drawable (active-drawable img)))
    (gimp-image-convert-precision img precision)
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 200 200 100 80)
    (let ((layer (inpaint img drawable model)))
      (layer-facts (string-append tag "-layer") layer)
      (fact (string-append tag "-precision") (car (gimp-image-get-precision img)) precision)
      (save img layer (string-append out "/" tag "-layer.png")))))

; The classic fill: asked for by name, and chosen with model "" when none is installed
; (the test points INPAINT_MODELS at an empty folder).
(define (case-classic photo out)
  (for-each
    (lambda (model tag)
      (let* ((img (load-photo photo)) (drawable (active-drawable img)))
        (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 120 200 160)
        (let ((layer (inpaint img drawable model)))
          (layer-facts (string-append tag "-layer") layer)
          (fact (string-append tag "-name") (car (gimp-item-get-name layer)))
          (save-merged img (string-append out "/" tag "-merged.png")))))
    (list "classic" "")
    (list "classic" "fallback")))

(define (run-all photo model out)
  (set! facts-port (open-output-file (string-append out "/facts.txt")))
  (for-each (lambda (thunk) (catch (fact "case-error") (thunk)))
            (list (lambda () (case-photo photo model out))
                  (lambda () (case-no-selection photo model))
                  (lambda () (case-indexed photo model))
                  (lambda () (case-bad-steps photo model))
                  (lambda () (case-offset-layer photo model out))
                  (lambda () (case-rgba photo model))
                  (lambda () (case-precision photo model out "u16" PRECISION-U16))
                  (lambda () (case-precision photo model out "float" PRECISION-FLOAT-LINEAR))
                  (lambda () (case-classic photo out))
                  (lambda () (version-cases photo model out))))
  (fact "done")
  (close-output-port facts-port))

; Only the photo case (the plug-in test's LoRA + TAESD session).
(define (run-photo photo model out)
  (set! facts-port (open-output-file (string-append out "/facts.txt")))
  (catch (fact "case-error") (case-photo photo model out))
  (fact "done")
  (close-output-port facts-port))

; The plug-in's process ends in the middle of a long run (the test kills it, as GIMP
; does when its progress bar's cancel button is pressed): the image keeps its layers.
(define (run-killed photo model out)
  (set! facts-port (open-output-file (string-append out "/facts.txt")))
  (let* ((img (load-photo photo)) (drawable (active-drawable img)) (before (layer-count img)))
    (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 150 120 200 160)
    (catch (fact "killed" "failed")
           (begin (inpaint-steps img drawable model 1000) (fact "killed" "succeeded")))
    (fact "killed-layers" before (layer-count img)))
  (fact "done")
  (close-output-port facts-port))
